"""ait: the Associative Transformer, built on hopfieldkit's energies and descent.

Not implemented yet (tracked as the ait issue): this package is a placeholder so that the
repository layout is final. The Hopfield read it will use is
:class:`hopfieldkit.LowRankPriorEnergy` with :func:`hopfieldkit.descend`.
"""
__all__: list[str] = []
