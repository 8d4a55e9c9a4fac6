/** The value `load` gives, made on first use and kept. */
export function once<T>(load: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= load());
}
