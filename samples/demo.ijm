// make demo: segment the bundled wing-disc frame with the default model, headless, through the EPySeg plug-in.
// Argument: "IMAGE|OUTPUT_FOLDER". Writes labels, outlines, the ROI set, the Results table and an overlay PNG.
parts = split(getArgument(), "|");
image = parts[0];
out = parts[1];
setBatchMode(true);
open(image);
title = getTitle();
run("EPySeg Segment", "model=default output=[labels outlines rois results] overwrite save=[" + out + "]");
print("EPySeg Segment: " + nResults + " cells in " + title + "; results in " + out);

// The overlay PNG: the cells' ROIs drawn on the image. Menu commands need a display, so this uses ImageJ's Java API
// from Jython (the plug-in's Jython interpreter).
labels = replace(title, ".tif", "") + "-labels";
flatten = "from ij import WindowManager\n"
    + "from ij.io import FileSaver\n"
    + "from java.awt import Color\n"
    + "imp = WindowManager.getImage('" + title + "')\n"
    + "overlay = WindowManager.getImage('" + labels + "').getOverlay().duplicate()\n"
    + "overlay.setStrokeColor(Color.yellow)\n"
    + "imp.setOverlay(overlay)\n"
    + "FileSaver(imp.flatten()).saveAsPng('" + out + "/overlay.png')\n";
eval("python", flatten);
print("overlay: " + out + "/overlay.png");
