"""``paystream demo`` (``make run``): the whole engine end to end on this
machine, and its summary. What it runs on (worker and sink processes, funding,
load, collecting outcomes) is ``devtools/harness/``, shared with the bench."""
