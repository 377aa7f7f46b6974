"""nnkit: neural networks from scratch in numpy.

The modules follow the CS231n assignment API so existing course material and
checks carry over:

- ``layers``: forward/backward of single layers and the losses
- ``layer_utils``: "sandwich" layers built from them
- ``classifiers.fc_net``: ``TwoLayerNet``, ``FullyConnectedNet``
- ``classifiers.linear``: linear SVM and softmax classifiers
- ``optim``: update rules and learning-rate schedules
- ``solver``: ``Solver`` (training loop), model save/load as ``.npz``
- ``tuning``: grid, random and coarse-to-fine hyperparameter search
- ``gradient_check``: numeric gradients and ``rel_error``
- ``features``: HOG and colour-histogram image features
- ``data_utils``: CIFAR-10, MNIST and the embedded dataset (image and flat 784-d views)
- ``training``: YAML-config training (configs, epoch batches, train, grid search)
- ``classifiers.kth_net``, ``cyclical``: KTH's two-layer net, cyclical-rate training, the lambda search
- ``conv_layers``, ``classifiers.cnn``: convolution and max-pool layers, a LeNet-style ConvNet
- ``regression``, ``analysis``: MSE fitting; parameter counts, PCA of training paths,
  interpolation between models, sensitivity to the input
- ``vis_utils``: weight grids and training curves

Submodules are imported on use (``from nnkit.layers import affine_forward``),
so a module a student has not finished never breaks the others.
"""

__version__ = "0.1.0"
