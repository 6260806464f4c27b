// EPySeg: segment every image of a folder into the Tissue Analyzer layout (<folder>/<image>/handCorrection.tif).
// Existing masks are kept; a hand-corrected mask is never replaced. Esc cancels between tiles.
// Headless: epyseg-ij macro EPySeg_Segment_Folder.ijm --arg /path/to/folder
folder = getArgument();
headless = call("java.lang.System.getProperty", "java.awt.headless");
if (folder == "" && headless == "true") exit("Give the folder with --arg /path/to/folder");
if (folder == "") folder = getDirectory("Folder of images to segment");
summary = call("epyseg.bridge.PyBridge.call", "segment", "folder=[" + folder + "] model=default tta=none");
print("EPySeg: " + folder + ": " + summary);
