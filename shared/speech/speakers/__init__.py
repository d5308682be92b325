"""Who said what: speaker turns from diarization or from a call's channels, put on the words."""
