"""Importing this module declares every built-in scorer; each module is imported on first use."""

from medsafe.scoring import scorers

BUILTIN = {
    "classification": "medsafe.scorers.classification",
    "detection": "medsafe.scorers.detection",
    "guardian": "medsafe.scorers.guardian",
    "harmfulness": "medsafe.scorers.harmfulness",
    "mcq": "medsafe.scorers.mcq",
    "medes": "medsafe.scorers.medes",
    "rubric": "medsafe.scorers.rubric",
    "safety": "medsafe.scorers.safety",
}
"""Scorer name -> the module that registers it."""

for _name, _module in BUILTIN.items():
    if _name not in scorers:
        scorers.declare(_name, _module)
