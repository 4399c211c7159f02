"""Learning tasks (multiclass, binary, regression): their losses, metrics, measurers and plots."""
