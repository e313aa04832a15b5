"""The names the compress stage answers to, in one place (no imports: the CLIs read them at start-up)."""

# Model families (compress/models.py builds each; `vgg16` is the plain ImageNet VGG16, too big for the board).
FAMILIES = ("custom_cnn", "bn_cnn", "vgg_style", "vgg16", "mobilenet_v1", "mobilenet_v2")

# Training recipes (compress/models.py: train): "plain" is constant-LR Adam; "field" adds augmentation that keeps
# labels' meaning, a cosine learning-rate schedule and early stopping on validation accuracy (best weights kept).
RECIPES = ("plain", "field")

# Conversion variants (compress/quantize.py), in the order tables list them; int8 is the deployable one.
VARIANTS = ("float32", "float16", "dynamic", "int16x8", "int8")

# What made a compress row, beside its variant: a post-training conversion of the model (kind = its variant), or one
# of the fine-tuned levers, each compared with the parent trained as many epochs (EQUAL_EPOCHS) in total.
EQUAL_EPOCHS, QAT, PRUNED, FILTERS = "int8+epochs", "int8+qat", "int8+pruned", "int8+filters"
FINE_TUNED = (QAT, PRUNED, FILTERS)
# A study row from the architecture search's front (study/grid.py), trained like the families' rows.
SEARCH = "search"
