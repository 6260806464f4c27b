package epyseg.bridge;

import ij.IJ;
import ij.gui.GenericDialog;
import ij.gui.WaitForUserDialog;
import ij.gui.YesNoCancelDialog;
import ij.plugin.filter.Analyzer;
import ij.text.TextPanel;
import java.awt.AWTEvent;
import java.awt.Button;
import java.awt.Dialog;
import java.awt.FileDialog;
import java.awt.Toolkit;
import java.awt.event.AWTEventListener;
import java.awt.event.ActionEvent;
import java.awt.event.WindowEvent;

/**
 * Stands in for the person who is not at the screen when epyseg-ij runs a macro on its private, invisible display
 * ({@code epyseg-ij macro} without {@code --gui}), so that macros behave as in Fiji's headless mode.
 *
 * <ul>
 * <li>A dialog that got no macro options ({@code run("Gaussian Blur...")}, {@code Dialog.show()},
 * {@code getNumber(...)}) is confirmed with its defaults, as Fiji's headless dialogs are; a note says so on
 * stderr.</li>
 * <li>Anything else that waits for a person ({@code waitForUser}, a yes/no question, a file chooser) stops the macro
 * with a one-line error naming its line, instead of waiting for ever.</li>
 * <li>The Results table gets a panel shown nowhere: without a Results window ImageJ 1.x keeps only the last row of
 * {@code run("Measure")} and {@code roiManager("Measure")}.</li>
 * </ul>
 */
public final class NoPerson implements AWTEventListener {
    private static boolean installed;

    private NoPerson() {
    }

    /** Installs the stand-in (once) in this JVM, with {@link #keepResults()}; it needs a display. */
    public static synchronized void install() {
        keepResults();
        if (!installed) {
            installed = true;
            Toolkit.getDefaultToolkit().addAWTEventListener(new NoPerson(), AWTEvent.WINDOW_EVENT_MASK);
        }
    }

    /**
     * Gives the Results table a panel shown nowhere when ImageJ has no window (macros run by epyseg-ij, with a
     * display): without a Results window ImageJ 1.x keeps only the last row of each {@code run("Measure")}.
     */
    public static synchronized void keepResults() {
        if (!IJ.isResultsWindow() && IJ.getInstance() == null) {
            TextPanel panel = new TextPanel("Results");
            panel.setResultsTable(Analyzer.getResultsTable());
            IJ.setTextPanel(panel);
        }
    }

    @Override
    public void eventDispatched(AWTEvent event) {
        if (event.getID() != WindowEvent.WINDOW_OPENED || !(event.getSource() instanceof Dialog)) {
            return;
        }
        Dialog dialog = (Dialog) event.getSource();
        MacroRun run = waiting(dialog);
        if (dialog instanceof GenericDialog) {
            String where = run == null ? "" : " in line " + run.currentLine();
            System.err.println("epyseg-ij: macro note" + where + ": " + name(dialog) + " got no options: its defaults"
                    + " were used, as in Fiji's headless mode (record the options with Plugins > Macros > Record...)");
            Button ok = ((GenericDialog) dialog).getButtons()[0];
            ((GenericDialog) dialog).actionPerformed(new ActionEvent(ok, ActionEvent.ACTION_PERFORMED, "OK"));
            return;
        }
        if (run != null) {
            run.stopWith(needsPerson(dialog));
        }
        if (dialog instanceof WaitForUserDialog) {
            ((WaitForUserDialog) dialog).close(); // it waits on itself, not on the window
        } else {
            dialog.dispatchEvent(new WindowEvent(dialog, WindowEvent.WINDOW_CLOSING)); // "cancel"
        }
        dialog.dispose();
    }

    /** The macro run whose thread waits for this dialog (the only one running, or the one blocked in a dialog). */
    private static MacroRun waiting(Dialog dialog) {
        MacroRun only = null;
        int n = 0;
        for (MacroRun run : MacroRun.live()) {
            n++;
            only = run;
            for (StackTraceElement frame : run.thread().getStackTrace()) {
                String name = frame.getClassName();
                if (name.equals(dialog.getClass().getName()) || name.equals("java.awt.Dialog")) {
                    return run;
                }
            }
        }
        return n == 1 ? only : null;
    }

    private static String needsPerson(Dialog dialog) {
        if (dialog instanceof WaitForUserDialog) {
            return "waitForUser waits for a person at the screen: leave it out of batch macros, or run with --gui";
        }
        if (dialog instanceof FileDialog || dialog.getClass().getName().startsWith("javax.swing")) {
            return "the file chooser \"" + dialog.getTitle() + "\" needs a person: give the path in the macro"
                    + " (or with --arg), or run with --gui";
        }
        return name(dialog) + " needs a person at the screen: run the macro with --gui";
    }

    private static String name(Dialog dialog) {
        String title = dialog.getTitle();
        if (title != null && !title.trim().isEmpty()) {
            return "the \"" + title + "\" dialog";
        }
        if (dialog instanceof YesNoCancelDialog) {
            return "a yes/no question (getBoolean)";
        }
        return dialog instanceof GenericDialog ? "an untitled dialog (getNumber, getString...)" : "a dialog";
    }
}
