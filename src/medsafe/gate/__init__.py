"""Safety gate: policy rules decided on confidence bounds."""
