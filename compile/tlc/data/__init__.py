"""Dataset loading for tlc: image folders, CSV manifests, MedMNIST-style npz, sklearn digits.

Sources (the kind comes from the path alone, never from guessing at contents):

- folder: ``ROOT/CLASS/**/*.png|jpg|jpeg|tif|tiff|bmp|dcm`` (split automatically) or
  ``ROOT/{train,val,test}/CLASS/...`` (splits as given; val/ and test/ may be absent → empty splits).
  Class names are the (train) class folder names. ``.dcm`` is read by ``tlc_runtime.dicom`` under
  the run's DicomPolicy (``load_dataset(dicom=...)``), which needs pydicom (imported lazily).
- csv: header ``path,label[,split][,group]``, paths relative to the CSV's folder; labels define the
  classes; a ``split`` column gives the splits; ``group`` (patient/site) is kept on one side of an
  automatic split. Multi-task (``load_dataset(..., tasks=("finding", "view"))``): one label column per
  task, the first (primary) required on every row, the others may be empty (that image is unlabelled
  for that task); ``Dataset.tasks`` and ``Split.task_labels`` (N×T, -1 missing) carry them.
- npz: ``{train,val,test}_{images,labels}`` (labels (N,) or (N, 1)); class names "0", "1", ...
  unless the file has a ``class_names`` array. Plain ``images``/``labels`` is split automatically.

Class names sort as strings, or numerically when every name is an integer.

Pixel rules (explicit, so training and deployment agree):

- Native images are uint8 or uint16, H×W (grey) or H×W×3 (RGB). Files are read by the runtime's one
  reader, ``tlc_runtime.images`` (every rule, format by format, is in its docstring), so a file is the
  same array here and in ``predict(path)``: RGBA drops alpha; palette, LA, 1-bit, CMYK etc. become RGB
  or grey; an RGB image whose three channels are identical counts as grey. 16-bit colour files are
  refused (Pillow would cut them to 8 bits); float images are refused (NaN/Inf ones with their own
  message); so are multi-page files. npz arrays follow the same rules (``tlc_runtime.native``).
- Grey stays 1 channel (the model graph replicates it to 3). If any image is RGB the dataset has
  3 channels and its grey images are replicated to RGB.
- 8-bit and 16-bit images may not be mixed in one dataset.
- 8-bit: ``bit_depth`` 8, ``value_range`` (0, 255). 16-bit data is scaled by its real range, never
  clipped to 8 bits: ``bit_depth = max(9, bit_length(max value))`` (= ceil(log2(max + 1)); the
  maximum over every split, as the runtime refuses values above the model's bit depth), at most 16,
  and ``value_range = (0, 2**bit_depth - 1)``; 12-bit data in 16-bit PNGs gets (0, 4095).
- ``Dataset.arrays(split, size)`` resizes native pixels with ``tlc_runtime.preprocess`` (the one
  implementation the runtime uses) and casts to the graph dtype: uint8 for 8-bit data, float32
  holding the exact uint16 values for 16-bit data.

ROI (``load_dataset(..., roi=...)``, ``tlc train --roi``): "auto" or a boxes CSV crops every image
before resizing (``tlc.data.roi``: the CSV format; ``tlc_runtime.roi``: the crop and the automatic
rule, the one implementation the runtime applies too). Given boxes sit in ``Split.rois``.

Splits: automatic splits are deterministic for a ``seed``, stratified by class, keep every group and
every set of identical images on one side, and give each split at least one image per class where
the class has enough images. Identical images in train and test are a DataError; in train and val
(or val and test) a DataWarning, counted in ``Dataset.duplicates``. With ``duplicates="drop"``
(``tlc train --duplicates drop``) every train copy of a val or test image is removed instead (val and
test stay as published) and listed in ``Dataset.dropped_duplicates``. Every class needs train images.

``content_hash`` is a sha256 over the class names and each split's sorted (label, pixels) records:
stable across runs and machines, independent of file names, changed by any pixel or label change.
"""

from .checks import DataWarning
from .dataset import Dataset, Split
from .digits import load_digits
from .loader import load_dataset

__all__ = ["DataWarning", "Dataset", "Split", "load_dataset", "load_digits"]
