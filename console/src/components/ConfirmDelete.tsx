import type { RefObject } from 'react';

/** The modal that stands between a Delete button and the DELETE request: the page opens it
 * with `dialogRef.current?.showModal()`, and only its own Delete button calls `onConfirm`. */
export function ConfirmDelete({ dialogRef, id, title, warning, onConfirm }: {
  dialogRef: RefObject<HTMLDialogElement | null>;
  id: string;
  title: string;
  warning: string;
  onConfirm: () => void;
}) {
  return (
    <dialog ref={dialogRef} aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <p>{warning}</p>
      <div className="actions">
        <button type="button" onClick={() => dialogRef.current?.close()}>Cancel</button>
        <button type="button" className="danger" onClick={onConfirm}>Delete</button>
      </div>
    </dialog>
  );
}
