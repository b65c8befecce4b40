"""A Faster R-CNN region-proposal head (seed 003) for faces, on features of a pretrained network.

The pieces, in the order the seed builds them:
- boxes.py: rectangles (x_center, y_center, width, height), IoU, non-maximum suppression;
- anchors.py: 9 anchors per feature-map cell, the training targets of each anchor
  (`target`) and their inverse (`target2rect`);
- head.py: the network (3x3 conv + ReLU, 1x1 conv to 9 anchors x 5 outputs) and its loss;
- detect.py: the top-N rectangles of one image by objectness, after NMS;
- metrics.py: recall, precision and average precision at an IoU threshold;
- data.py: photos letterboxed to the face ResNet's input and its feature maps, cached.
"""
