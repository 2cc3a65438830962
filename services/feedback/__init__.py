"""Feedback capture: completion records, thumbs/scores/preferences, metrics and the training export."""
from services.feedback.records import ChoiceRecord, CompletionRecord, FeedbackRequest
from services.feedback.recorder import CompletionRecorder

__all__ = ["ChoiceRecord", "CompletionRecord", "CompletionRecorder", "FeedbackRequest"]
