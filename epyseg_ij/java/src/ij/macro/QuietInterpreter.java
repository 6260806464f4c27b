package ij.macro;

/**
 * A macro interpreter that stops at the first error without showing ImageJ's "Macro Error" dialog.
 *
 * <p>ImageJ 1.x either shows that dialog (modal, or a {@code HeadlessException} without a display) or, with
 * {@code setIgnoreErrors(true)}, records the message and runs on past the failing statement. This class keeps
 * ImageJ's own error path (the macro stops where the error is, its line and message are kept) and replaces only the
 * dialog, which is package-private in {@link Interpreter}; hence this package. The caller ({@code
 * epyseg.bridge.MacroRun}) reports the error. It must be loaded by ImageJ's class loader (it is on the class path
 * with {@code ij.jar}); otherwise the dialog shows as before.
 */
public class QuietInterpreter extends Interpreter {
    private int errorLine;

    @Override
    void showError(String title, String message, String[] variables) {
        errorLine = lineNumber;
    }

    /** Ends the macro after the statement being executed (callable from another thread). */
    public void stop() {
        done = true;
    }

    /** The line of the interpreter error that stopped the macro; 0 when none did. */
    public int getErrorLineNumber() {
        return errorLine;
    }
}
