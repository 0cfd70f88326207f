"""A user's own test file: README's "Check your own component" section, verbatim (the test at the end checks it).

What a student, a framework maintainer or a researcher writes in their own suite: a hand-written Adam with
epsilon inside the root gets its convention named; one line per kind checks Keras' built-ins.
"""

# --- README: begin
import keras
from keras import ops

from keras_optreg import conformance


class MyAdam(keras.optimizers.Optimizer):
    """Adam as often written by hand: epsilon inside the square root."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, variables):
        super().build(variables)
        self.m = [self.add_variable_from_reference(v, "m") for v in variables]
        self.v = [self.add_variable_from_reference(v, "v") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        i, t = self._get_variable_index(variable), ops.cast(self.iterations + 1, variable.dtype)
        self.m[i].assign(self.beta_1 * self.m[i] + (1 - self.beta_1) * gradient)
        self.v[i].assign(self.beta_2 * self.v[i] + (1 - self.beta_2) * ops.square(gradient))
        m_hat = self.m[i] / (1 - ops.power(self.beta_1, t))
        v_hat = self.v[i] / (1 - ops.power(self.beta_2, t))
        variable.assign_sub(learning_rate * m_hat / ops.sqrt(v_hat + self.epsilon))


def test_my_adam_puts_epsilon_inside_the_root():
    verdict = conformance.verify(MyAdam, "eq18", max_examples=20)
    assert verdict.convention.startswith("delta inside the root"), verdict


def test_keras_components_one_per_kind():
    conformance.assert_conforms(keras.initializers.GlorotUniform, "eq01")
    conformance.assert_conforms(lambda a, b, t: keras.optimizers.schedules.PolynomialDecay(a, t, b), "eq06")
    assert conformance.verify(keras.regularizers.L2, "eq19").convention.startswith("no 1/2")
    assert conformance.verify(keras.layers.BatchNormalization, "batchnorm_moving").convention.startswith("biased")
# --- README: end


def test_readme_shows_this_file_verbatim():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    section = (root / "README.md").read_text().split("## Check your own component", 1)[1].split("\n## ", 1)[0]
    shown = section.split("```python\n", 1)[1].split("```", 1)[0]
    source = pathlib.Path(__file__).read_text().split("# --- README: begin\n", 1)[1].split("# --- README: end", 1)[0]
    assert shown == source
