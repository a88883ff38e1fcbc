/**
 * Guidance composed into the agent's instructions file (CLAUDE.md, AGENTS.md), one fragment per
 * tool module of src/runner/tools. It lives in src/shared because the host composes the files
 * and may not import the runner; a tool definition may point its `instructions` here.
 */
export const TOOL_INSTRUCTIONS: Readonly<Record<string, string>> = {
  'send-message':
    'Use `send_message` to reach a chat other than the current one, or to send a progress note during a long task. Your final answer is delivered automatically: do not also send it with `send_message`.',
  'send-file': 'Use `send_file` to deliver a file you made (a path inside your folder) to the chat.',
  'ask-user-question':
    'Use `ask_user_question` when you need a decision from the person before going on; it waits for their answer.',
  'task-tools':
    'For anything that should happen later or repeatedly, use the task tools (`schedule_task` and friends), never cron or sleep loops: tasks survive restarts.',
  'list-destinations': 'Call `list_destinations` to learn which chats you may send to by name.',
};
