"""The names the compress stage answers to, in one place (no imports: the CLIs read them at start-up)."""

# Model families (compress/models.py builds each; `vgg16` is the plain ImageNet VGG16, too big for the board).
FAMILIES = ("custom_cnn", "vgg_style", "vgg16", "mobilenet_v1", "mobilenet_v2")

# Conversion variants (compress/quantize.py), in the order tables list them; int8 is the deployable one.
VARIANTS = ("float32", "float16", "dynamic", "int16x8", "int8")
