"""Fast parametric simulation of the invis2016 setup, writing NA64RAW1 runs plus truth.

``sim`` may import ``recon`` (detector description, raw writer); ``recon``
never imports ``sim``.
"""
