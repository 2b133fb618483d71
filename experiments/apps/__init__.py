"""Small LLM apps exercised by the experiments in `experiments/`.

They use the official openai and anthropic SDKs with their default HTTP clients,
exactly as production apps do; aichaos intercepts them without any change.
"""
