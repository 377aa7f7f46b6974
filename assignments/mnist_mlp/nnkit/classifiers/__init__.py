"""Models: fully-connected nets (``fc_net``), linear classifiers (``linear``), KTH's two-layer net
(``kth_net``) and a small convolutional net (``cnn``)."""
