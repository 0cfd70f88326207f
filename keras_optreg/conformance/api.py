"""Check your own component against a spec row: :func:`verify` and :func:`assert_conforms`.

The same rows, strategies, tolerances and conventions as ``python -m keras_optreg.conformance``,
run on a factory you pass. How the factory is called depends on the row's family:

============================  ==============================================================
family (spec ids)             ``factory`` is called as
============================  ==============================================================
initializer (eq01-eq03)       ``factory(seed=s)``, then ``init(shape, dtype="float32")``
optimizer (eq04-05, eq07-18,  ``factory(**hp)`` (``learning_rate`` and the row's keywords,
adagrad, centered_rmsprop,    e.g. ``beta_1, beta_2, epsilon``; ``weight_decay`` for adamw),
amsgrad, adamw)               then ``apply`` on a float32 variable, 7 steps
schedule (eq06)               ``factory(initial, final, decay_steps)``, then ``schedule(steps)``
penalty (eq19)                ``factory(lam)``, then ``penalty(weight)`` per weight, summed
batchnorm (eq20)              ``factory(epsilon=e)`` (row ``batchnorm_moving``: ``momentum=m``)
dropout / input_noise         ``factory(rate, seed=s)`` / ``factory(stddev, seed=s)``
random_flip / random_crop     ``factory(seed=s)`` / ``factory(height, width, seed=s)``
random_rotation               ``factory(max_angle_radians, seed=s)`` (bilinear, constant fill 0)
============================  ==============================================================

A spec id picks its first row (``eq09``: momentum; ``eq19``: the corrected Tikhonov penalty;
``eq20``: the training output); a row key picks that row (``"nesterov"``, ``"weight_norm"``,
``"batchnorm_moving"``, ``"adagrad_r0"``, ...): ``rows()`` lists them.
"""

from __future__ import annotations

import importlib.util

_USER_FAMILIES = ("initializers", "optimizers", "scalars", "layers")
_NOT_USER_ROWS = ("minibatch_gradient",)  # the loss reduction: no component to pass


def rows():
    """{row key: (spec ids, label)} of the rows :func:`verify` accepts."""
    from keras_optreg.conformance import registry

    return {key: (ids, label) for key, ids, label, _ in registry.rows() if key not in _NOT_USER_ROWS}


def _row(spec_id):
    import importlib

    from keras_optreg.conformance import registry

    if not isinstance(spec_id, str):
        raise TypeError(f"Argument `spec_id` must be a spec id or row key (str). Received: spec_id={spec_id!r}")
    for family in registry.FAMILIES:
        mod = importlib.import_module(f"keras_optreg.conformance.{family}")
        if spec_id in mod.KINDS and spec_id not in _NOT_USER_ROWS:
            return mod, spec_id
    for family in registry.FAMILIES:
        mod = importlib.import_module(f"keras_optreg.conformance.{family}")
        for kind in mod.KINDS:
            if spec_id in mod.SPEC_IDS[kind] and kind not in _NOT_USER_ROWS:
                return mod, kind
    raise ValueError(f"Argument `spec_id` must be a spec id or row key: {', '.join(rows())} or one of their spec ids. "
                     f"Received: spec_id={spec_id!r}")


def _name(factory):
    return getattr(factory, "__qualname__", None) or repr(factory)


def verify(factory, spec_id, *, max_examples=None, settings=None):
    """The verdict (``engine.Verdict``) on ``factory``'s component for spec id or row key ``spec_id``.

    A Hypothesis search for a counterexample against the spec's form of the row, within float32
    tolerances; on a failure the shrunk counterexample is kept and each named convention of the row
    is searched the same way, the first the component follows over every example naming the deviation.

    Args:
        factory: a class or callable building the component (how it is called: the module docstring).
        spec_id: a spec id (``"eq18"``) or a row key (``"nesterov"``); see :func:`rows`.
        max_examples: Hypothesis examples per search; default: ``settings``' value, else 50.
        settings: a ``hypothesis.settings`` the searches start from (your profile: database, derandomize,
            max_examples); the tool always sets deadline=None, its phases and no health checks. Default:
            derandomized, no database, so the same code gives the same verdict.

    Returns:
        A ``Verdict``: ``.conforms``; ``.convention`` (the named convention or erratum a deviation follows,
        or None); ``.unexplained``; ``.counterexample`` (inputs, expected, got); ``str(verdict)`` one line.
    """
    if not callable(factory):
        raise TypeError(f"Argument `factory` must be callable (a class or function). Received: factory={factory!r}")
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)
                                     or max_examples < 1):
        raise ValueError(f"Argument `max_examples` must be an integer >= 1 or None. Received: max_examples={max_examples!r}")
    if importlib.util.find_spec("hypothesis") is None:
        raise ImportError("keras_optreg.conformance.verify needs Hypothesis: pip install keras_optreg[conformance]")
    import hypothesis

    if settings is not None and not isinstance(settings, hypothesis.settings):
        raise TypeError(f"Argument `settings` must be a hypothesis.settings or None. Received: settings={settings!r}")
    if settings is None and max_examples is None:
        max_examples = 50
    from keras_optreg.conformance import engine

    mod, kind = _row(spec_id)
    return engine.evaluate(mod.user_check(kind, factory, _name(factory)), max_examples, settings=settings)


def assert_conforms(factory, spec_id, *, max_examples=None, settings=None):
    """Assert that :func:`verify` finds ``factory``'s component conforming to ``spec_id``; return the verdict.

    The ``AssertionError`` says what the component follows instead (the named convention, or
    ``unexplained``) and the shrunk counterexample. Arguments as :func:`verify`.
    """
    verdict = verify(factory, spec_id, max_examples=max_examples, settings=settings)
    if not verdict.conforms:
        raise AssertionError(str(verdict))
    return verdict
