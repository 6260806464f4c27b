// EPySeg: measure the cells of the current label image or Tissue Analyzer outline mask (8-bit, 255 = boundaries):
// one ROI per cell and a Results table (Label, Area, Perim., X, Y, Neighbours) in calibrated units.
// Headless: epyseg-ij macro EPySeg_Measure_Cells.ijm --arg /path/to/image/handCorrection.tif
path = getArgument();
if (path != "") open(path);
if (nImages == 0) exit("Open a label image or a handCorrection.tif first.");
setBatchMode(true);
run("EPySeg Measure", "output=[rois results]");
print(getTitle() + ": " + nResults + " cells");
