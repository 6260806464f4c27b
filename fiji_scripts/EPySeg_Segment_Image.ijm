// EPySeg: segment the current image; labels, outlines, one ROI per cell and a Results table of per-cell measurements.
// Run in an ImageJ/Fiji started by `epyseg-ij fiji`, or headless: epyseg-ij macro EPySeg_Segment_Image.ijm --arg IMAGE
// (add save=[folder] to the options to write the label image, ROIs and table as files).
path = getArgument();
if (path != "") open(path);
if (nImages == 0) exit("Open an image first (or pass its path as the macro argument).");
setBatchMode(true);
title = getTitle();
run("EPySeg Segment", "model=default tta=none output=[labels outlines rois results]");
print(title + ": " + nResults + " cells, mean area " + d2s(columnMean("Area"), 2));  // the image stays current
if (call("java.lang.System.getProperty", "java.awt.headless") != "true")
    setBatchMode("exit and display");  // show the results in the GUI

function columnMean(column) {
    sum = 0;
    for (i = 0; i < nResults; i++) sum += getResult(column, i);
    return sum / maxOf(nResults, 1);
}
