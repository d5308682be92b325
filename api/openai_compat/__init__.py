"""OpenAI's transcription API (``POST /v1/audio/transcriptions``) over this service's jobs."""
