from keras_mimo.models.mimoconv.mimoconv import MIMOConv, WideResNet
