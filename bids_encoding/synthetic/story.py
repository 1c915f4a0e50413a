"""The demo's story, written for this project (public domain, CC0).

Paragraphs are separated by blank lines; the generator splits them into runs.
"""

STORY = """\
The lighthouse stood at the end of a long spit of grey stones, and for forty years it had been kept by a woman named Ada Merrow. She was small and quick, with hands that smelled of oil and salt, and she talked to the lamp as if it were an old friend who had grown a little deaf. Every evening she climbed the ninety steps, counted them aloud, and wound the clockwork that turned the great lens. Every morning she wrote three lines in the logbook: the weather, the ships, and one thing she had noticed that nobody else would care about.

On the first day of autumn she wrote that a heron had stood on the rocks for an hour without moving, as if it were waiting for a letter. On the second day she wrote that the wind had changed its mind twice before noon. On the third day she wrote nothing about the weather at all, because a boy had come walking along the spit with a suitcase in one hand and a cage in the other, and she did not know what to make of him.

The boy said his name was Tobias and that he had been sent by his aunt, who thought the sea air would cure him of being sad. Ada said that the sea air had never cured anybody of anything, but that it was very good at making people hungry. She asked what was in the cage. Tobias lifted the cloth, and inside sat a crow with one white feather in its left wing. It looked at Ada with an expression of deep suspicion, which she found she rather liked.

The crow was called Pepper. It could say four words: hello, no, biscuit, and, for reasons nobody could explain, Wednesday. It said Wednesday whenever it was pleased, and hello whenever it was frightened, which Ada thought was the wrong way round, but she kept that opinion to herself. That night the three of them ate fish soup at the kitchen table while the lamp turned above them, throwing its long white arm across the water, again and again, patient as a clock.

In the weeks that followed, Tobias learned the ninety steps. He learned how to trim a wick and polish brass until it showed his face, and how to read the barometer, which Ada called the glass. He learned that a red sky in the morning was not always a warning, and that the fog could arrive in ten minutes and stay for three days. He learned the names of the ships that passed: the Margarethe, which carried coal; the Silver Ann, which carried nobody knew what; and a small blue fishing boat called Persistence, whose captain waved his hat every single time.

Ada, for her part, learned that Tobias drew maps. He drew them on the backs of envelopes, on the margins of the logbook, and once, to her great annoyance, on the kitchen wall. They were not maps of places that existed. They were maps of islands with mountains shaped like sleeping dogs, of rivers that ran uphill, of cities built on the backs of whales. Each map had a small lighthouse somewhere on its coast, and each lighthouse had a tiny figure at the top, holding a lamp.

One evening in November the glass fell faster than Ada had ever seen it fall. The sky turned the colour of a bruise, and the sea began to breathe in long, heavy swells that broke white over the end of the spit. Ada sent Tobias to fill every lantern in the house, and she climbed the steps two at a time, counting under her breath. By nightfall the wind was screaming around the tower, and the rain came sideways, hard as gravel against the glass.

At nine o'clock the clockwork jammed. The great lens shuddered and stopped, and the white arm of light froze, pointing uselessly at the cliffs to the north. Ada swore, which she rarely did, and Pepper, from his cage in the corner, said hello three times in a small voice. Tobias held the lantern while Ada opened the brass case of the mechanism. A gear had lost a tooth. Without it the lens could not turn, and a lamp that does not turn is only a bright window, telling no ship where the rocks are.

There was no spare gear. The nearest one was in the town, eleven miles away, behind a road that was already under water. Ada sat down on the top step and, for the first time in forty years, did not know what to do. It was Tobias who spoke first. He said that if the lens could not turn by itself, then someone would have to turn it. Ada looked at him for a long moment. Then she stood up, took off her coat, and put both hands on the iron handle that was meant only for repairs.

They turned the lens by hand for the rest of the night. Ada counted the seconds, because each ship knew the lighthouse by its rhythm: two flashes, a pause, and two flashes again. When her arms shook, Tobias took the handle, and she counted for him, and when his arms shook she took it back. Pepper watched them from his cage and, somewhere around midnight, decided to help in the only way he could. Every time the light came round to the sea, he said Wednesday.

Near three in the morning they saw a light out on the water, small and low and moving far too close to the reef. Ada knew it at once. It was the blue boat, Persistence, caught by the storm on its way home. They turned the lens, two flashes, a pause, two flashes, and they watched the little light hesitate, swing away from the rocks, and creep along the safe channel toward the harbour mouth. Neither of them said anything. Ada's hands were bleeding a little where the iron had rubbed them, and she did not notice until much later.

The storm blew itself out at dawn. The sea was still grey and angry, but the wind had dropped to a grumble, and the gulls came back one by one to argue on the rocks. Ada and Tobias sat on the gallery outside the lamp room, wrapped in the same blanket, drinking tea that had gone cold an hour before. Pepper had fallen asleep with his head under his wing. Below them, the spit was covered in seaweed and broken wood, as if the ocean had emptied its pockets in the night.

Two days later the captain of Persistence walked the whole length of the spit with a basket of fish and a bottle of something brown. He said that he had been lost, properly lost, for the first time in thirty years, and that he had seen the light come round, two flashes and two flashes, steady as a heartbeat, and he had known exactly where he was. He asked how they had kept it turning with the road under water and no help from the town. Ada told him. He looked at Tobias for a long while and then shook his hand, the way one sailor shakes the hand of another.

The new gear arrived in December, packed in straw, and Ada fitted it herself while Tobias held the lamp. The lens turned again on its own, smooth and silent, and the iron handle went back to being a thing for repairs. But something had changed. Ada found that she talked to the lamp less and to the boy more. She told him about the winters before he was born, about the ship that had sunk when she was young, about her own mother, who had kept the light before her and who had also, it turned out, drawn maps of places that did not exist.

When spring came, a letter arrived from the aunt, saying that Tobias could come home if he was feeling better. He read it twice at the kitchen table and then folded it very small. He said he would like to stay until the summer, if that was allowed. Ada said that it was not up to her, it was up to the lamp, and the lamp had said nothing against it. Pepper, who had been listening from the windowsill, said Wednesday, and that settled the matter.

In the logbook, on the first day of spring, Ada wrote three lines. The weather was fair, with a light wind from the west. Two ships passed, the Margarethe and a stranger with red sails. And the thing she had noticed that nobody else would care about was this: on the kitchen wall, beside the old map of the island with mountains like sleeping dogs, there was a new one. It showed a long spit of grey stones, a lighthouse at the end of it, and at the top of the lighthouse, two small figures and a crow, holding the light together.
"""


def paragraphs():
    """The story's paragraphs, in order."""
    return [paragraph.split() for paragraph in STORY.strip().split("\n\n")]
