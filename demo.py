"""The demo utility's data (placeholder until the full generator lands)."""


def load(reset=False, echo=print):
    echo("demo data: not yet")
