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
    verdicts = conformance.run(only=["adam"], max_examples=50)    # the table's rows
    verdicts = conformance.run(columns=["keras_optreg"])           # one column of every row
    verdict = conformance.verify(MyAdam, "eq18")                   # your component, any kind
    conformance.assert_conforms(MyInitializer, "eq01")             # the same, as an assertion

The toolkit the test suite imports lives here too: ``strategies`` (Hypothesis), ``cases``
(optimizer cases and tolerances), ``compare`` (the comparison), ``engine`` (verdicts) and
``pytest_plugin`` (spec coverage from ``@pytest.mark.spec`` markers; only pytest loads it).
"""

from __future__ import annotations


def run(only=None, max_examples=50, progress=None, columns=None):
    """The verdicts (``engine.Verdict``) of the selected rows (keys or spec ids, e.g. ``["adam", "eq19"]``)
    and columns (``registry.COLUMNS``, e.g. ``["keras_optreg", "keras"]``; all when None)."""
    from keras_optreg.conformance import registry

    return registry.run(only=only, max_examples=max_examples, progress=progress, columns=columns)


def verify(factory, spec_id, *, max_examples=None, settings=None):
    """The verdict on ``factory``'s component for spec id or row key ``spec_id``: see :func:`api.verify`."""
    from keras_optreg.conformance import api

    return api.verify(factory, spec_id, max_examples=max_examples, settings=settings)


def assert_conforms(factory, spec_id, *, max_examples=None, settings=None):
    """:func:`verify` as an assertion; returns the verdict: see :func:`api.assert_conforms`."""
    from keras_optreg.conformance import api

    return api.assert_conforms(factory, spec_id, max_examples=max_examples, settings=settings)


__all__ = ["assert_conforms", "run", "verify"]
