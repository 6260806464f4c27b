// make demo: segment the bundled wing-disc frame with the default model, headless, through the EPySeg plug-in.
// Argument: "IMAGE|OUTPUT_FOLDER". Writes labels, outlines, the ROI set, the Results table and an overlay PNG.
parts = split(getArgument(), "|");
image = parts[0];
out = parts[1];
setBatchMode(true);
open(image);
title = getTitle();
run("EPySeg Segment", "model=default output=[labels outlines rois results overlay] overwrite save=[" + out + "]");
print("EPySeg Segment: " + nResults + " cells in " + title + "; results in " + out);

// The overlay PNG: the 'overlay' output drew the cells' outlines on the image, which stays the current one; Jython
// (the plug-in's interpreter) flattens it with ImageJ's Java API, which needs no display.
flatten = "from ij import WindowManager\n"
    + "from ij.io import FileSaver\n"
    + "FileSaver(WindowManager.getImage('" + title + "').flatten()).saveAsPng('" + out + "/overlay.png')\n";
eval("python", flatten);
print("overlay: " + out + "/overlay.png");
