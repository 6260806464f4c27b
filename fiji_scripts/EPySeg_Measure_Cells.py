# EPySeg: measure the cells of the current label image or Tissue Analyzer outline mask (8-bit, 255 = boundaries):
# one ROI per cell and a table of label, area, perimeter, centroid and number of neighbours, in calibrated units.
from ij import IJ
from epyseg.bridge import PyBridge

imp = IJ.getImage()
reply = PyBridge.measure(imp, "output=[rois results]")
table = reply.get("results")
table.show("Results")
if IJ.getInstance() is not None:
    from ij.plugin.frame import RoiManager

    manager = RoiManager.getRoiManager()
    manager.reset()
    for roi in reply.get("rois"):
        manager.addRoi(roi)
result = "%d cells" % reply.get("cells")
IJ.log("EPySeg: %s: %s" % (imp.getTitle(), result))
