"""Written Vietnamese from a recogniser's spoken form: text in, text out.

Speech recognisers give a lowercase run of syllables with numbers spelled out. This package
turns it into what a reader expects (numbers as written, punctuation, capitals) while keeping,
for every written token, the range of spoken words it came from, so callers can carry word
times across. It knows nothing of audio, engines, jobs or HTTP.
"""
