"""keras_optreg: the lecture "Initialization, Optimization, and Regularization" as Keras 3 components.

Every public component cites the lecture's equation number and its source; ``spec/`` (outside this
package, never imported by it) holds the executable transcription the tests compare against.
"""

from keras_optreg import callbacks, functional, initializers, layers, regularizers
from keras_optreg.optimizers import SGD, Adagrad, Adam, RMSprop
from keras_optreg.schedules import LinearDecay

__version__ = "0.1.0"

__all__ = ["__version__", "SGD", "Adagrad", "RMSprop", "Adam", "LinearDecay", "callbacks", "functional", "initializers",
           "layers", "regularizers"]
