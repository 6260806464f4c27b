package epyseg.bridge;

/** An error reported by the EPySeg Python service, with the one-line message meant for the user. */
public class BridgeException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String kind;

    public BridgeException(String message, String kind) {
        super(message);
        this.kind = kind == null ? "EpysegError" : kind;
    }

    /** The Python error class: InputError, ModelError, Cancelled, InternalError, NotRunning... */
    public String getKind() {
        return kind;
    }

    /** True when the user cancelled the job (Esc or the cancel command): not an error to display. */
    public boolean isCancelled() {
        return "Cancelled".equals(kind);
    }
}
