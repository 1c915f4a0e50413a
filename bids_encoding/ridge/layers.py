"""The best layer of each voxel, chosen on inner-validation scores only."""

import numpy as np


class BestLayer:
    """Per outer fold and voxel, keeps the layer with the best inner-validation score at the alpha used (never
    the test data), with its test scores and held-out predictions."""

    def __init__(self):
        self.validation = self.test_r = self.test_r2 = self.layer = None
        self.predictions = self.targets = None

    def update(self, layer, result):
        if self.validation is None:
            self.validation, self.test_r, self.test_r2 = (result.validation_score.copy(), result.test_r.copy(),
                                                          result.test_r2.copy())
            self.layer = np.full(result.test_r.shape, layer)
            self.predictions = [p.copy() for p in result.predictions]
            self.targets = result.targets
            return
        better = result.validation_score > self.validation
        for mine, theirs in ((self.validation, result.validation_score), (self.test_r, result.test_r),
                             (self.test_r2, result.test_r2)):
            mine[better] = theirs[better]
        self.layer[better] = layer
        for fold, prediction in enumerate(result.predictions):
            self.predictions[fold][:, better[fold]] = prediction[:, better[fold]]

    def most_chosen_layer(self, layers):
        counts = np.stack([(self.layer == layer).sum(axis=0) for layer in layers])
        return np.asarray(layers)[counts.argmax(axis=0)]
