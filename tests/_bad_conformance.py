"""Bad-input rows: the public checking API (``conformance.verify``): every argument checked before a search."""

from __future__ import annotations

import keras

from keras_optreg import conformance
from tests.badinput import Case

L2 = keras.regularizers.L2


def _verify(*args, **kwargs):
    return lambda: conformance.verify(*args, **kwargs)


CASES = [
    Case("conformance/verify-factory-not-callable", _verify("L2", "eq19"), TypeError, ("factory", "'L2'")),
    Case("conformance/verify-unknown-spec-id", _verify(L2, "eq99"), ValueError, ("spec_id", "'eq99'", "tikhonov")),
    Case("conformance/verify-spec-id-not-a-string", _verify(L2, 19), TypeError, ("spec_id", "19")),
    Case("conformance/verify-loss-reduction-row", _verify(L2, "minibatch_gradient"), ValueError,
         ("spec_id", "'minibatch_gradient'")),
    Case("conformance/verify-max-examples-zero", _verify(L2, "eq19", max_examples=0), ValueError,
         ("max_examples", "0")),
    Case("conformance/verify-max-examples-float", _verify(L2, "eq19", max_examples=2.5), ValueError,
         ("max_examples", "2.5")),
    Case("conformance/verify-max-examples-bool", _verify(L2, "eq19", max_examples=True), ValueError,
         ("max_examples", "True")),
    Case("conformance/verify-settings-not-hypothesis", _verify(L2, "eq19", settings={"max_examples": 3}), TypeError,
         ("settings", "max_examples")),
]
