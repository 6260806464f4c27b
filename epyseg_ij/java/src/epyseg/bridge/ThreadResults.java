package epyseg.bridge;

import ij.ImagePlus;
import ij.gui.Roi;
import ij.macro.Variable;
import ij.measure.ResultsTable;
import ij.plugin.filter.Analyzer;
import ij.process.ImageProcessor;
import java.io.IOException;

/**
 * The system Results table of a headless ImageJ, with one table per thread.
 *
 * <p>ImageJ 1.x has a single system Results table ({@code Analyzer.getResultsTable()}): {@code nResults},
 * {@code getResult}, {@code run("Measure")}, {@code saveAs("Results", ...)} and the EPySeg commands all use it. When
 * several macros run at once (from several Python threads, say), each would read the others' rows. Installed as the
 * system table ({@link #install()}, headless only: a display shows one Results window), it hands every method call to
 * the calling thread's own table, so each macro sees its own results. Every public method of ResultsTable is handed
 * on; the inherited storage is never used.
 */
@SuppressWarnings("deprecation")
public final class ThreadResults extends ResultsTable {
    private static final ThreadLocal<ResultsTable> TABLES = new ThreadLocal<ResultsTable>() {
        @Override
        protected ResultsTable initialValue() {
            ResultsTable table = new ResultsTable();
            table.setPrecision(Analyzer.getPrecision());
            table.showRowNumbers(true);
            return table;
        }
    };

    private ThreadResults() {
    }

    /** Makes the system Results table per thread (once; again if something replaced it). */
    public static synchronized void install() {
        if (!(Analyzer.getResultsTable() instanceof ThreadResults)) {
            Analyzer.setResultsTable(new ThreadResults());
        }
    }

    /** The calling thread's table. */
    public static ResultsTable table() {
        return TABLES.get();
    }

    @Override
    public String getTitle() {
        String title = table().getTitle();
        return title == null ? "Results" : title;
    }

    @Override public void addRow() { table().addRow(); }
    @Override public void incrementCounter() { table().incrementCounter(); }
    @Override public void addColumns() { table().addColumns(); }
    @Override public int getCounter() { return table().getCounter(); }
    @Override public int size() { return table().size(); }
    @Override public void addValue(int a, double b) { table().addValue(a, b); }
    @Override public void addValue(String a, double b) { table().addValue(a, b); }
    @Override public void addValue(String a, String b) { table().addValue(a, b); }
    @Override public void addLabel(String a) { table().addLabel(a); }
    @Override public void addLabel(String a, String b) { table().addLabel(a, b); }
    @Override public void setLabel(String a, int b) { table().setLabel(a, b); }
    @Override public void disableRowLabels() { table().disableRowLabels(); }
    @Override public double[] getColumn(String a) { return table().getColumn(a); }
    @Override public String[] getColumnAsStrings(String a) { return table().getColumnAsStrings(a); }
    @Override public float[] getColumn(int a) { return table().getColumn(a); }
    @Override public double[] getColumnAsDoubles(int a) { return table().getColumnAsDoubles(a); }
    @Override public ImageProcessor getTableAsImage() { return table().getTableAsImage(); }
    @Override public boolean columnExists(int a) { return table().columnExists(a); }
    @Override public int getColumnIndex(String a) { return table().getColumnIndex(a); }
    @Override public int getFreeColumn(String a) { return table().getFreeColumn(a); }
    @Override public double getValueAsDouble(int a, int b) { return table().getValueAsDouble(a, b); }
    @Override public float getValue(int a, int b) { return table().getValue(a, b); }
    @Override public double getValue(String a, int b) { return table().getValue(a, b); }
    @Override public boolean columnExists(String a) { return table().columnExists(a); }
    @Override public String getStringValue(String a, int b) { return table().getStringValue(a, b); }
    @Override public String getStringValue(int a, int b) { return table().getStringValue(a, b); }
    @Override public String getLabel(int a) { return table().getLabel(a); }
    @Override public void setValue(String a, int b, double c) { table().setValue(a, b, c); }
    @Override public void setValue(int a, int b, double c) { table().setValue(a, b, c); }
    @Override public void setValue(String a, int b, String c) { table().setValue(a, b, c); }
    @Override public void setValue(int a, int b, String c) { table().setValue(a, b, c); }
    @Override public void setValues(String a, double[] b) { table().setValues(a, b); }
    @Override public String getColumnHeadings() { return table().getColumnHeadings(); }
    @Override public String[] getHeadings() { return table().getHeadings(); }
    @Override public String getColumnHeading(int a) { return table().getColumnHeading(a); }
    @Override public String getRowAsString(int a) { return table().getRowAsString(a); }
    @Override public Variable[] getColumnAsVariables(String a) { return table().getColumnAsVariables(a); }
    @Override public void setColumn(String a, Variable[] b) { table().setColumn(a, b); }
    @Override public void setHeading(int a, String b) { table().setHeading(a, b); }
    @Override public void setDefaultHeadings() { table().setDefaultHeadings(); }
    @Override public void setPrecision(int a) { table().setPrecision(a); }
    @Override public void setDecimalPlaces(int a, int b) { table().setDecimalPlaces(a, b); }
    @Override public void setNaNEmptyCells(boolean a) { table().setNaNEmptyCells(a); }
    @Override public void showRowNumbers(boolean a) { table().showRowNumbers(a); }
    @Override public boolean showRowNumbers() { return table().showRowNumbers(); }
    @Override public void showRowIndexes(boolean a) { table().showRowIndexes(a); }
    @Override public void saveColumnHeaders(boolean a) { table().saveColumnHeaders(a); }
    @Override public void deleteRow(int a) { table().deleteRow(a); }
    @Override public void deleteRows(int a, int b) { table().deleteRows(a, b); }
    @Override public void deleteColumn(String a) { table().deleteColumn(a); }
    @Override public void renameColumn(String a, String b) { table().renameColumn(a, b); }
    @Override public void reset() { table().reset(); }
    @Override public int getLastColumn() { return table().getLastColumn(); }
    @Override public void addResults() { table().addResults(); }
    @Override public void updateResults() { table().updateResults(); }
    @Override public void show(String a) { table().show(a); }
    @Override public void update(int a, ImagePlus b, Roi c) { table().update(a, b, c); }
    @Override public boolean save(String a) { return table().save(a); }
    @Override public boolean saveAndRename(String a) { return table().saveAndRename(a); }
    @Override public void saveAs(String a) throws IOException { table().saveAs(a); }
    @Override public Object clone() { return table().clone(); }
    @Override public String toString() { return table().toString(); }
    @Override public boolean applyMacro(String a) { return table().applyMacro(a); }
    @Override public String[] getHeadingsAsVariableNames() { return table().getHeadingsAsVariableNames(); }
    @Override public boolean columnDeleted() { return table().columnDeleted(); }
    @Override public void sort(String a) { table().sort(a); }
}
