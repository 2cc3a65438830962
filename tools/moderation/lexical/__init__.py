"""The lexical stage of the moderation build (build venv): pretrained profanity/hate models and
TF-IDF heads in one ONNX graph. `tools/moderation/convert.py` is its command."""
