from keras_mimo.models.mimoformer.curriculum import MIMOWarmup
from keras_mimo.models.mimoformer.mimoformer import MIMOFormer, Performer
