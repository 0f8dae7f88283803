/** `node --import @metaloop/testing/no-native …`: run with the native tfjs backends hidden. */
import { register } from 'node:module';

register('./no-native-hooks.js', import.meta.url);
