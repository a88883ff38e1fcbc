/** How a question reads on a channel without buttons: numbered options, answered by number or text. */
export function questionText(
  title: string | undefined,
  question: string,
  options: string[],
  note?: string,
): string {
  return [
    title ? `**${title}**` : null,
    question,
    ...options.map((o, i) => `${i + 1}. ${o}`),
    `Reply with the number or the option${note ? ` (${note})` : ''}.`,
  ]
    .filter(Boolean)
    .join('\n');
}
