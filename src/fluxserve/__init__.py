"""fluxserve: a self-hosted, Wiro-compatible task API for FLUX image models."""

__version__ = "0.1.0"
