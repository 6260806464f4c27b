# EPySeg: segment the current image; show the label image, one ROI per cell and the per-cell measurements.
#
# Runs in an ImageJ/Fiji started from Python by `epyseg-ij fiji` (the EPySeg service must be running).
# Optional argument (IJ.runMacroFile(script, options)): EPySeg Segment options, e.g. "model=default tta=flip".
from ij import IJ
from ij.gui import GenericDialog
from epyseg.bridge import PyBridge


def ask_options():
    try:
        given = getArgument()  # ImageJ 1.x passes the macro argument; Fiji's script editor has no getArgument
    except NameError:
        given = ""
    if given or IJ.getInstance() is None:
        return given
    gd = GenericDialog("EPySeg: segment image")
    gd.addStringField("Model", "default", 24)
    gd.addChoice("TTA", ["none", "flip", "epyseg"], "none")
    gd.addNumericField("Channel (0 = single-channel image)", 0, 0)
    gd.showDialog()
    if gd.wasCanceled():
        return None
    options = "model=[%s] tta=%s" % (gd.getNextString(), gd.getNextChoice())
    channel = int(gd.getNextNumber())
    return options + (" channel=%d" % channel if channel > 0 else "")


imp = IJ.getImage()
options = ask_options()
if options is not None:
    reply = PyBridge.segment(imp, options + " output=[labels outlines rois results]")
    labels, rois, table = reply.get("labels"), reply.get("rois"), reply.get("results")
    table.show("Results")
    if IJ.getInstance() is not None:
        from ij.plugin.frame import RoiManager

        manager = RoiManager.getRoiManager()
        manager.reset()
        for roi in rois:
            manager.addRoi(roi)
        labels.show()
        reply.get("outlines").show()
    result = "%d cells" % reply.get("cells")
    IJ.log("EPySeg: %s: %s" % (imp.getTitle(), result))
