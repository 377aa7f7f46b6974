"""Models: fully-connected nets (``fc_net``) and linear classifiers (``linear``)."""
