"""OpenAI's Images API (``/v1/images/generations``, ``/v1/images/edits``, ``/v1/models``) on the
same tools and task store as the Wiro API: every request is an ordinary task."""
