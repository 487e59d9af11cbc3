"""termmon inside the training frameworks people use: one callback for Hugging Face ``Trainer``
(``termmon.integrations.hf``) and one for ``lightning.Trainer`` (``termmon.integrations.lightning``).

Each submodule imports its framework; this package imports nothing, so ``import termmon`` never loads
transformers or lightning. Both drive the same ``Telemetry`` as a plain loop (termmon.integrations.session).
"""
