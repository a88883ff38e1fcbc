// Barrel: one line per tool module. Importing this module registers every tool.
import './send-message.js';
import './send-file.js';
import './edit-message.js';
import './add-reaction.js';
import './send-card.js';
import './ask-user-question.js';
import './list-destinations.js';
import './task-tools.js';

export { toolRegistry } from './registry.js';
