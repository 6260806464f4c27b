# EPySeg: train (or fine-tune) a model on Tissue Analyzer folders (image.tif + image/handCorrection.tif).
# ImageJ's progress bar follows the steps; Esc stops after the current step (resume later with "resume").
#
# Argument (optional): EPySeg Train options, e.g. "data=[/data/wing] name=wing-v1 from=default epochs=20".
from ij import IJ
from ij.gui import GenericDialog
from epyseg.bridge import PyBridge

try:
    options = getArgument()
except NameError:
    options = ""
if not options:
    gd = GenericDialog("EPySeg: train")
    gd.addDirectoryField("Data folder", "")
    gd.addStringField("Name of the new model", "my-model", 20)
    gd.addStringField("Fine-tune from (empty = new network)", "default", 20)
    gd.addNumericField("Epochs", 20, 0)
    gd.addCheckbox("Corrected masks only", True)
    gd.showDialog()
    if not gd.wasCanceled():
        options = "data=[%s] name=[%s] from=[%s] epochs=%d" % (
            gd.getNextString(), gd.getNextString(), gd.getNextString(), int(gd.getNextNumber()))
        if gd.getNextBoolean():
            options += " corrected"
if options:
    reply = PyBridge.train(options)
    IJ.log("EPySeg: model saved to %s (best epoch %s)" % (reply.get("path"), reply.get("best_epoch")))
    result = reply.get("path")
