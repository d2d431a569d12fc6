"""keras-mimo's built-in presets: one directory per preset (data only, no code), installed as the
package ``keras_mimo.zoo``; see README.md here and ``keras_mimo.presets``."""
