# EPySeg: segment every image of a folder into the Tissue Analyzer layout (<folder>/<image>/handCorrection.tif).
# Existing masks are kept (a hand-corrected mask is never replaced). Esc cancels between tiles.
#
# Argument (optional): the folder. Without it a folder chooser opens.
from ij import IJ
from epyseg.bridge import PyBridge

try:
    folder = getArgument()
except NameError:
    folder = ""
if not folder:
    folder = IJ.getDirectory("Folder of images to segment")
if folder:
    reply = PyBridge.request("segment", {"options": "folder=[%s] model=default tta=none" % folder})
    summary = reply.get("value")
    IJ.log("EPySeg: %s: %s" % (folder, summary))
    result = summary
