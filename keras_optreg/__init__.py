"""keras_optreg: the lecture "Initialization, Optimization, and Regularization" as Keras 3 components.

Every public component cites the lecture's equation number and its source; ``spec/`` (outside this
package, never imported by it) holds the executable transcription the tests compare against.
"""

__version__ = "0.1.0"

from keras_optreg import layers  # noqa: E402

__all__ = ["__version__", "layers"]
