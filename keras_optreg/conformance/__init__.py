"""Spec conformance as a tool: which implementation follows which equation.

``python -m keras_optreg.conformance`` checks keras_optreg's components, Keras' built-ins, the
lecture's printed equations and (when installed) PyTorch and optax against the executable spec
(``spec``, shipped with the package), equation by equation, with Hypothesis (derandomized, no
database), and prints a table whose cells say ``conforms (max rel err ...)``, ``deviates: <named
convention or erratum>`` with the smallest counterexample found, ``n/a`` or ``not installed``.

This package is the one part of keras_optreg that imports ``spec`` (and Hypothesis, an optional
extra: ``pip install keras_optreg[conformance]``); the library's core modules import neither spec
nor this package. Nothing here is imported by ``import keras_optreg``.

Python API (Hypothesis is imported on first use)::

    from keras_optreg import conformance
    verdicts = conformance.run(only=["adam"], max_examples=50)
    conformance.verify_optimizer("adam", lambda hp: MyAdam(**hp))  # any Keras optimizer factory
"""

from __future__ import annotations


def run(only=None, max_examples=50, progress=None):
    """The verdicts (``engine.Verdict``) of the selected rows (keys or spec ids, e.g. ``["adam", "eq19"]``)."""
    from keras_optreg.conformance import registry

    return registry.run(only=only, max_examples=max_examples, progress=progress)


def verify_optimizer(kind, factory, max_examples=50, component="injected"):
    """The verdict on a Keras optimizer ``factory(hp)`` for optimizer row ``kind`` ("sgd", ..., "adam")."""
    from keras_optreg.conformance import optimizers

    return optimizers.verify_optimizer(kind, factory, max_examples=max_examples, component=component)


__all__ = ["run", "verify_optimizer"]
