"""Outbound HTTP: safe fetch of user URLs (SSRF guard, size and time limits), input images,
callback delivery. Light on purpose: httpx and Pillow only, never torch."""
