"""The lexical stage of the moderation build (build venv): alt-profanity-check converted to one
ONNX graph. `tools/moderation/convert.py` is its command."""
